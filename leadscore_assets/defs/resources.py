"""What every domain's assets run with, bound to the settings the definitions are built for: the
settings themselves, the warehouse (DuckDB or PostgreSQL), dbt on the same engine, the candidates
IO manager, and one in-process executor."""

import dagster as dg

from leadscore_assets.defs.training.assets import CANDIDATES_IO_MANAGER
from leadscore_assets.defs.training.candidate import CandidateIOManager
from leadscore_assets.project import dbt_cli
from leadscore_assets.settings import current
from leadscore_assets.warehouse import warehouse_for


@dg.definitions
def resources() -> dg.Definitions:
    settings = current()
    return dg.Definitions(
        resources={
            "settings": settings,
            "dbt": dbt_cli(settings),
            "warehouse": warehouse_for(settings),
            CANDIDATES_IO_MANAGER: CandidateIOManager(candidates_dir=str(settings.candidates_dir)),
        },
        # Steps share one process: on a small machine, a subprocess per step (the default)
        # costs more start-up time than the steps themselves.
        executor=dg.in_process_executor,
    )
