"""Tablium's pure No-Limit Hold'em engine: rules, evaluation, pots, PHH hand histories."""

from .cards import format_card, format_cards, parse_card, parse_cards
from .engine import Hand
from .errors import HandFinished, IllegalAction, InvalidAmount, InvalidSetup, NotYourTurn, PhhError, PokerError
from .evaluator import Category, HandRank, evaluate, evaluate_many, rank_hand
from .hand_state import Event, LegalActions, Pot
from .rules import BlindPlan, FoldRule, TableRules, default_blind_plan
from .shuffle import commitment, deck_from_seed, new_seed

__all__ = [
    "BlindPlan",
    "Category",
    "Event",
    "FoldRule",
    "Hand",
    "HandFinished",
    "HandRank",
    "IllegalAction",
    "InvalidAmount",
    "InvalidSetup",
    "LegalActions",
    "NotYourTurn",
    "PhhError",
    "PokerError",
    "Pot",
    "TableRules",
    "commitment",
    "deck_from_seed",
    "default_blind_plan",
    "evaluate",
    "evaluate_many",
    "format_card",
    "format_cards",
    "new_seed",
    "parse_card",
    "parse_cards",
    "rank_hand",
]
