"""The statements of the transfer engine (:mod:`tablium_wallet.services.batch`), each one round trip."""

from __future__ import annotations

from sqlalchemy import text

# A transfer and what resolved it, in the order services.transfers.record_from_row reads them.
TRANSFER_COLUMNS = (
    "t.id, t.debit_account_id, t.credit_account_id, t.amount, t.asset, t.code, t.flags, t.pending_id, "
    "t.timeout_s, t.expires_at, t.metadata::text, t.created_at, r.flags, r.amount"
)

# Accounts locked in id order, with their owner's limits (a player's; NULL for everyone else).
LOCK_ACCOUNTS = text(
    "SELECT a.id, a.owner, a.kind, a.asset, a.flags, a.debits_pending, a.debits_posted, a.credits_pending, "
    "a.credits_posted, l.daily_deposit_limit::text, l.daily_loss_limit::text, l.self_excluded_until, "
    "l.scheduled::text, l.scheduled_at, a.debits_overdraft "
    "FROM accounts a LEFT JOIN limits l ON l.owner = a.owner "
    "WHERE a.id = ANY(CAST(:ids AS uuid[])) ORDER BY a.id FOR UPDATE OF a"
)
PENDING_ACCOUNTS = text(
    "SELECT id, debit_account_id, credit_account_id FROM transfers WHERE id = ANY(CAST(:ids AS uuid[]))"
)
READ_TRANSFERS = text(
    f"SELECT {TRANSFER_COLUMNS} FROM transfers t LEFT JOIN transfers r ON r.pending_id = t.id "  # noqa: S608 (constant column lists only)
    "WHERE t.id = ANY(CAST(:ids AS uuid[]))"
)
DAY_ACTIVITY = text(
    "SELECT t.debit_account_id, t.credit_account_id, t.amount, t.flags, d.kind, c.kind, r.id IS NULL "
    "FROM transfers t JOIN accounts d ON d.id = t.debit_account_id JOIN accounts c ON c.id = t.credit_account_id "
    "LEFT JOIN transfers r ON r.pending_id = t.id "
    "WHERE (t.debit_account_id = ANY(CAST(:ids AS uuid[])) OR t.credit_account_id = ANY(CAST(:ids AS uuid[]))) "
    "AND t.created_at >= :since"
)
# Everything a batch writes, in one statement (one round trip while the accounts are locked).
WRITE = text(
    "WITH new_transfers AS ("
    " INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, asset, code, flags, pending_id,"
    " timeout_s, expires_at, metadata, created_at)"
    " SELECT i, d, c, a, s, k, f, p, t, e, m::jsonb, :now FROM unnest("
    " CAST(:id AS uuid[]), CAST(:debit AS uuid[]), CAST(:credit AS uuid[]), CAST(:amount AS numeric[]),"
    " CAST(:asset AS text[]), CAST(:code AS text[]), CAST(:flags AS int[]), CAST(:pending_id AS uuid[]),"
    " CAST(:timeout AS int[]), CAST(:expires AS timestamptz[]), CAST(:metadata AS text[])"
    " ) AS u(i, d, c, a, s, k, f, p, t, e, m)"
    "), opened AS ("
    " INSERT INTO pending_transfers (transfer_id, expires_at)"
    " SELECT * FROM unnest(CAST(:opened AS uuid[]), CAST(:opened_expires AS timestamptz[]))"
    "), closed AS ("
    " DELETE FROM pending_transfers WHERE transfer_id = ANY(CAST(:closed AS uuid[]))"
    "), counters AS ("
    " UPDATE accounts AS a SET debits_pending = u.dp, debits_posted = u.dpo, credits_pending = u.cp,"
    " credits_posted = u.cpo, debits_overdraft = u.dov FROM unnest(CAST(:account AS uuid[]),"
    " CAST(:dp AS numeric[]), CAST(:dpo AS numeric[]), CAST(:cp AS numeric[]), CAST(:cpo AS numeric[]),"
    " CAST(:dov AS numeric[])) AS u(id, dp, dpo, cp, cpo, dov)"
    " WHERE a.id = u.id"
    "), events AS ("
    " INSERT INTO outbox (id, type, subject, envelope, headers)"
    " SELECT i, t, s, e::jsonb, CAST(:headers AS jsonb) FROM unnest("
    " CAST(:event_id AS uuid[]), CAST(:event_type AS text[]), CAST(:event_subject AS text[]),"
    " CAST(:envelope AS text[])) AS u(i, t, s, e)"
    ") SELECT 1"
)
