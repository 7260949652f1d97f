"""Target profiles: the built-in Loihi profiles, validation messages, and the `nmc targets` command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import nmc.cli
from ir.errors import TargetError
from nmc.targets import PROFILE_DIR, flatten, list_profiles, load_profile

LOIHI = PROFILE_DIR / "loihi.toml"


def test_builtin_loihi_profiles_listed():
    names = {p.name: p for p in list_profiles()}
    assert {"loihi", "loihi-mini"} <= set(names)
    for name, p in names.items():
        assert p.path.stem == name  # built-in profiles are named after their file


def test_loihi_numbers_and_sources():
    p = load_profile("loihi")
    assert (p.name, p.family, p.cores) == ("loihi", "loihi", 128)
    want = {
        "core.neurons": 1024, "core.axons_in": 4096, "core.axons_out": 4096,
        "core.synapse_words": 16384, "core.synapse_word_bits": 64,
        "core.compartment_configs": 32, "core.threshold_configs": 16, "core.synapse_configs": 16,
        "widths.weight": 8, "widths.weight_exp_min": -8, "widths.weight_exp_max": 7,
        "widths.decay": 12, "widths.u": 24, "widths.v": 24, "widths.vth_mant": 17,
        "widths.bias_mant": 13, "widths.bias_exp": 3, "neuron.refractory_max": 63,
        "synapse.delay_max": 62, "overflow.u": "wrap", "overflow.v": "saturate",
        "energy.sop": 23.6e-12, "energy.spike": 1.7e-12, "energy.update_active": 81e-12,
        "energy.update_idle": 52e-12, "energy.hop_ew": 3.0e-12, "energy.hop_ns": 4.0e-12,
    }
    assert {k: p.get(k) for k in want} == want
    assert p.source("energy.sop") == "paper: Davies 2018 (23.6 pJ per synaptic op)"
    assert p.source("widths.weight") == "code: Lava weightutils (num_weight_bits 0..8)"
    # Every number carries a source tag.
    for key, value in flatten(p.data).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert re.match(r"^(code|paper|ours|derived|doc|measured): .+", p.source(key)), key


def test_loihi_mini_is_small():
    p = load_profile("loihi-mini")
    assert (p.cores, p.get("core.neurons"), p.get("core.axons_in")) == (16, 64, 256)
    assert p.get("widths.u") == load_profile("loihi").get("widths.u")


def test_profile_by_path_and_sha(tmp_path):
    copy = tmp_path / "mychip.toml"
    copy.write_bytes(LOIHI.read_bytes())
    p = load_profile(str(copy))
    assert p.path == copy and p.name == "loihi"
    assert p.sha256 == load_profile("loihi").sha256
    assert load_profile(Path(copy)).get("core.neurons") == 1024


def test_get_unknown_key_and_missing_source():
    p = load_profile("loihi")
    with pytest.raises(TargetError, match=r"^profile loihi \(.*loihi\.toml\): no key 'core\.nope'; "
                                          r"the loihi family does not define it$"):
        p.get("core.nope")
    assert p.get("core.nope", 7) == 7
    with pytest.raises(TargetError, match=r"^profile loihi \(.*\): no source for key 'profile\.name'$"):
        p.source("profile.name")


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = LOIHI.read_text()
    assert old in text
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old,new,problem", [
    ("neurons = 1024", "neurons = -5", "core.neurons = -5 is out of range: must be >= 1"),
    ("neurons = 1024", 'neurons = "many"', "core.neurons = 'many' has type string; expected int"),
    ("neurons = 1024", "neurons = 1024.5", "core.neurons = 1024.5 has type float; expected int"),
    ("weight = 8\n", "weight = 9\n", "widths.weight = 9 is out of range: must be <= 8"),
    ("u = 24", "u = 20", "widths.u = 20 is out of range: must be >= 24"),
    ('u = "wrap"', 'u = "saturate"', "overflow.u = 'saturate' is not one of 'wrap'"),
    ("sop = 23.6e-12", "sop = -1.0", "energy.sop = -1.0 is out of range: must be >= 0"),
    ("[neuron]", "[neuron]\nrefractory_mx = 3",
     "unknown key neuron.refractory_mx = 3: the family does not declare it (a typo?)"),
    ('"energy.sop" = "paper: Davies 2018 (23.6 pJ per synaptic op)"\n', "",
     "energy.sop = 2.36e-11 has no source: add [sources] \"energy.sop\" = \"<kind>: <where>\" "
     "(kind one of code, paper, ours, derived, doc, measured)"),
    ('"energy.sop" = "paper: Davies 2018 (23.6 pJ per synaptic op)"',
     '"energy.sop" = "Davies 2018"',
     "[sources] energy.sop = 'Davies 2018' is not a source tag \"<kind>: <where>\" with kind "
     "one of code, paper, ours, derived, doc, measured"),
    ("weight_exp_min = -8", "weight_exp_min = 0\nweight_exp_max = -0", None),
])
def test_broken_number_is_rejected_naming_the_key(tmp_path, old, new, problem):
    path = _broken(tmp_path, old, new)
    if problem is None:  # a duplicate key is a TOML error
        with pytest.raises(TargetError, match=rf"^profile {re.escape(str(path))}: not valid TOML: "):
            load_profile(path)
        return
    with pytest.raises(TargetError) as e:
        load_profile(path)
    assert str(e.value) == f"profile {path}: {problem}"


def test_missing_key(tmp_path):
    path = _broken(tmp_path, "axons_in = 4096\n", "")
    with pytest.raises(TargetError) as e:
        load_profile(path)
    assert str(e.value) == (
        f"profile {path}: 2 problems:\n"
        "  - missing key core.axons_in (input axons per core)\n"
        "  - [sources] names 'core.axons_in', which is not a key of the profile"
    )


def test_family_cross_key_hook(tmp_path, monkeypatch):
    import nmc.targets.families.loihi as fam

    monkeypatch.setattr(fam, "check", lambda p: [f"core.axons_in = {p.get('core.axons_in')} "
                                                 "must be even"], raising=False)
    with pytest.raises(TargetError, match=r"^profile .*loihi\.toml: core\.axons_in = 4096 must "
                                          r"be even$"):
        load_profile("loihi")


def test_unknown_family_and_target(tmp_path):
    path = _broken(tmp_path, 'family = "loihi"', 'family = "spinnaker"')
    with pytest.raises(TargetError, match=rf"^profile {re.escape(str(path))}: profile\.family = "
                                          r"'spinnaker' is not a known family; known families: "
                                          r".*loihi.* \(a family is a module "
                                          r"nmc/targets/families/<family>\.py\)$"):
        load_profile(path)
    with pytest.raises(TargetError, match=r"^unknown target 'loihi3'; built-in profiles: .*loihi.* "
                                          r"\(or pass the path of a \.toml profile\)$"):
        load_profile("loihi3")
    with pytest.raises(TargetError, match=r"^target profile file nowhere/x\.toml does not exist$"):
        load_profile("nowhere/x.toml")


def test_cli_lists_profiles():
    res = CliRunner().invoke(nmc.cli.cli, ["targets"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split() == ["name", "family", "cores/chip", "neurons/core", "file"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert rows["loihi"] == ["loihi", "loihi", "128", "(8x16)", "1024", "nmc/targets/loihi.toml"]
    assert rows["loihi-mini"] == ["loihi-mini", "loihi", "16", "(4x4)", "64",
                                  "nmc/targets/loihi-mini.toml"]


def test_cli_show_profile_with_sources():
    res = CliRunner().invoke(nmc.cli.cli, ["targets", "show", "loihi"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "profile loihi (family loihi)"
    assert lines[1] == f"file    {LOIHI}"
    neurons = next(ln for ln in lines if ln.startswith("core.neurons "))
    assert re.fullmatch(r"core\.neurons +=\s1024 +\[code: nengo-loihi \(Loihi 1: 1024 "
                        r"compartments per core\)\]", neurons)


def test_cli_show_rejects_broken_profile(tmp_path):
    path = _broken(tmp_path, "neurons = 1024", "neurons = 0")
    res = CliRunner().invoke(nmc.cli.cli, ["targets", "show", str(path)])
    assert res.exit_code == 1
    assert res.stderr == f"Error: profile {path}: core.neurons = 0 is out of range: must be >= 1\n"
