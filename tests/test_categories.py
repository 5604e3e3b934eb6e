"""Categorical inputs: how channel values are matched, how a model's categories are learned from
its training values, and how unknown and missing values reach the matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leadscore_core.features import (
    FALLBACK_CHANNEL,
    INPUT_FIELDS_BY_NAME,
    MAX_CATEGORY_LENGTH,
    MIN_CATEGORY_LEADS,
    OTHER,
    category_key,
    encode_categories,
    feature_matrix,
    feature_values,
    features_for,
    learn_categories,
)

CHANNEL = INPUT_FIELDS_BY_NAME["channel"]
LEAD_SOURCE = INPUT_FIELDS_BY_NAME["lead_source"]


@pytest.mark.parametrize(
    "spelling",
    ["Organic Search", "organic search", "ORGANIC_SEARCH", "Organic-Search", " organic  search "],
)
def test_channel_spellings_share_one_key(spelling):
    assert category_key(spelling) == category_key("Organic Search") == "organicsearch"


def test_cross_network_written_any_way_is_one_group():
    assert {category_key(v) for v in ("Cross-network", "Cross network", "CROSS_NETWORK")} == {
        "crossnetwork"
    }


def test_channel_codes_follow_the_key_and_unknown_values_take_the_fallback():
    categories = ("Organic Search", "Paid Search", FALLBACK_CHANNEL)
    codes = encode_categories(
        ["organic search", "PAID_SEARCH", "TikTok", None, math.nan], categories, CHANNEL
    )
    np.testing.assert_array_equal(codes[:3], [0.0, 1.0, 2.0])
    assert np.isnan(codes[3:]).all(), "a missing value stays missing, it is not the fallback"


def test_attribute_values_match_exactly_as_written():
    categories = ("Webinar", OTHER)
    codes = encode_categories(["Webinar", "webinar", "Podcast"], categories, LEAD_SOURCE)
    np.testing.assert_array_equal(codes, [0.0, 1.0, 1.0])


def test_learned_categories_keep_frequent_values_in_frequency_order():
    values = ["Webinar"] * 50 + ["Trade show"] * 30 + ["Podcast"] * (MIN_CATEGORY_LEADS - 1)
    values += [None] * 100
    assert learn_categories(LEAD_SOURCE, values) == ["Webinar", "Trade show", OTHER]


def test_learned_categories_are_capped_with_the_fallback_counted():
    field = INPUT_FIELDS_BY_NAME["industry"]
    values = [f"industry {i:02d}" for i in range(40) for _ in range(MIN_CATEGORY_LEADS + i)]
    learned = learn_categories(field, values)
    assert len(learned) == field.max_categories
    assert learned[0] == "industry 39" and learned[-1] == OTHER


def test_a_value_too_long_for_a_request_never_becomes_a_category():
    """The API refuses a longer value (422), so a model must not depend on one."""
    longest, too_long = "x" * MAX_CATEGORY_LENGTH, "y" * (MAX_CATEGORY_LENGTH + 1)
    values = [too_long] * 500 + [longest] * MIN_CATEGORY_LEADS
    assert learn_categories(LEAD_SOURCE, values) == [longest, OTHER]
    encoded = encode_categories([too_long], [longest, OTHER], LEAD_SOURCE)
    assert list(encoded) == [1.0]


def test_an_attribute_no_lead_has_learns_only_its_fallback():
    assert learn_categories(LEAD_SOURCE, [None] * 500) == [OTHER]


def test_channel_categories_follow_the_vocabulary_order():
    vocabulary = ["Organic Search", "Paid Search", "Direct", FALLBACK_CHANNEL, "Audio"]
    values = ["Direct"] * 40 + ["organic search"] * 30 + ["Audio"] * 3 + ["Affiliates"] * 50
    # Audio is too rare, Affiliates is not in this vocabulary: both score as Unassigned.
    assert learn_categories(CHANNEL, values, vocabulary) == [
        "Organic Search",
        "Direct",
        FALLBACK_CHANNEL,
    ]


def test_matrix_and_row_agree_on_missing_and_unknown_categories():
    features = features_for(["channel", "lead_source", "company_size", "page_views"])
    categories = {"channel": ("Direct", FALLBACK_CHANNEL), "lead_source": ("Webinar", OTHER)}
    leads = [
        {"channel": "direct", "lead_source": "Webinar", "company_size": 40, "page_views": 3},
        {"channel": "TikTok", "lead_source": "Podcast", "company_size": None, "page_views": None},
        {"channel": "Direct"},
    ]
    columns = {
        name: [lead.get(name) for lead in leads]
        for name in ("channel", "lead_source", "company_size", "page_views")
    }
    matrix = feature_matrix(columns, features, categories)
    np.testing.assert_array_equal(
        matrix,
        np.array(
            [[0, 0, 40, 3], [1, 1, np.nan, np.nan], [0, np.nan, np.nan, np.nan]],
            dtype=np.float32,
        ),
    )
    for lead, row in zip(leads, matrix, strict=True):
        np.testing.assert_array_equal(
            np.array(feature_values(lead, features, categories), dtype=np.float32), row
        )
