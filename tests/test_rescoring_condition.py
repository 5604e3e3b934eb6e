"""When the automation sensor re-scores the open leads: the real condition of `lead_scores`,
evaluated by Dagster's own evaluator against runs on a real instance, with stand-ins for the mart
and the published model (the pipeline's own runs are in test_scoring_lifecycle.py)."""

import dagster as dg
import pytest

from leadscore_assets.defs.scoring.assets import (
    LEAD_SCORES_KEY,
    PUBLISHED_MODEL_KEY,
    RESCORE_WHEN_INPUTS_CHANGE,
)
from leadscore_assets.defs.warehouse.assets import MART_KEY

MART_TEST = "mart_test"


class MartConfig(dg.Config):
    tests_pass: bool = True


@dg.asset(
    key=MART_KEY,
    check_specs=[dg.AssetCheckSpec(MART_TEST, asset=MART_KEY, blocking=True)],
)
def mart(config: MartConfig):
    """Like dbt build: the table is rebuilt, then its (blocking) tests run."""
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name=MART_TEST, passed=config.tests_pass)


@dg.asset(key=PUBLISHED_MODEL_KEY)
def published_model() -> None:
    """Stands for the gated publish step."""


class ScoringConfig(dg.Config):
    fail: bool = False


@dg.asset(
    key=LEAD_SCORES_KEY,
    deps=[PUBLISHED_MODEL_KEY, MART_KEY],
    automation_condition=RESCORE_WHEN_INPUTS_CHANGE,
)
def lead_scores(config: ScoringConfig) -> None:
    if config.fail:
        raise dg.Failure("scoring failed")


ASSETS = [mart, published_model, lead_scores]


class Ticks:
    """The automation sensor's evaluations, one tick at a time, on one instance."""

    def __init__(self) -> None:
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor = None

    def requested(self) -> bool:
        result = dg.evaluate_automation_conditions(
            defs=ASSETS, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        return result.get_num_requested(LEAD_SCORES_KEY) == 1

    def run(self, *keys: dg.AssetKey, **config: dict) -> dg.ExecuteInProcessResult:
        """A run that selects `keys`, as the UI, a job or the sensor launches one (the run
        records its asset selection)."""
        job = dg.Definitions(assets=ASSETS).resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            instance=self.instance,
            asset_selection=list(keys),
            run_config={"ops": config},
            raise_on_error=False,
        )


@pytest.fixture
def ticks() -> Ticks:
    ticks = Ticks()
    assert ticks.run(MART_KEY, PUBLISHED_MODEL_KEY, LEAD_SCORES_KEY).success
    assert not ticks.requested(), "the first evaluation only starts the record"
    return ticks


def test_a_run_that_scored_after_its_updates_needs_no_rescoring(ticks) -> None:
    assert ticks.run(MART_KEY, PUBLISHED_MODEL_KEY, LEAD_SCORES_KEY).success
    assert not ticks.requested()


def test_a_new_mart_without_a_scoring_is_rescored_once(ticks) -> None:
    """The refused-candidate case: the run rebuilt the mart, then stopped before scoring."""
    assert ticks.run(MART_KEY).success
    assert ticks.requested()
    assert not ticks.requested(), "requested once, not on every tick"


def test_a_run_that_was_to_score_but_failed_is_rescored(ticks) -> None:
    result = ticks.run(
        MART_KEY, PUBLISHED_MODEL_KEY, LEAD_SCORES_KEY, lead_scores={"config": {"fail": True}}
    )
    assert not result.success
    assert ticks.requested()


def test_a_model_published_on_its_own_is_rescored(ticks) -> None:
    assert ticks.run(PUBLISHED_MODEL_KEY).success
    assert ticks.requested()


def test_a_mart_whose_tests_failed_is_not_scored_until_they_pass(ticks) -> None:
    ticks.run(MART_KEY, marts__fct_lead_scoring_features={"config": {"tests_pass": False}})
    assert not ticks.requested()
    assert ticks.run(MART_KEY).success
    assert ticks.requested()
