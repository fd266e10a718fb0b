from tablium_kit.migrations import run_env
from tablium_player.db.models import Base

run_env(Base.metadata)
