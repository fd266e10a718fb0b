from tablium_rakeback.db.models import Base

from tablium_kit.migrations import run_env

run_env(Base.metadata)
