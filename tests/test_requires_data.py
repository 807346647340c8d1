"""The one rule for tests that need downloaded data: skip with the reason offline, fail when CI demands the data."""
import pytest

import conftest


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "MIRROR", tmp_path / "mirror")
    monkeypatch.setattr(conftest, "CACHE", tmp_path / "cache")
    return tmp_path


def test_unreachable_dataset_skips_with_the_reason(nowhere, monkeypatch):
    monkeypatch.delenv(conftest.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"dataset madelon not reachable offline: "
                                                    r"scikit-feature/madelon.mat is in neither the cache"):
        conftest.require_data("madelon")


def test_unreachable_dataset_fails_when_data_is_required(nowhere, monkeypatch):
    monkeypatch.setenv(conftest.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="missing data is a failure, not a skip"):
        conftest.require_data("cora")


def test_a_dataset_in_the_mirror_or_cache_is_reachable(nowhere, monkeypatch):
    monkeypatch.setenv(conftest.REQUIRE_ENV, "1")
    (nowhere / "cache" / "planetoid").mkdir(parents=True)
    (nowhere / "cache" / "planetoid" / "ind.cora.x").write_bytes(b"")
    conftest.require_data("cora")  # neither skips nor fails
    assert conftest.data_folder("cora") == nowhere / "cache"
    assert conftest.missing_data("cora", "Yale").startswith("dataset Yale not reachable")


def test_embedded_datasets_need_no_file_and_unknown_names_are_an_error():
    assert conftest.needs_files(["digits", "ucr:GunPoint", "mnist5k", "Yale"]) == ["mnist5k", "Yale"]
    with pytest.raises(ValueError, match="add it to DATA_FILES"):
        conftest.require_data("digits")
