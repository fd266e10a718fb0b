"""Use cases that are not account management (that is ``tablium_player.service``)."""
