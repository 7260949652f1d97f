"""``nmc inspect``: what is in a chip image (summary, per-core disassembly, JSON)."""

from __future__ import annotations

import json

import click


def _jsonable(v):
    import numpy as np

    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def core_tables(chip, core: int | None) -> list[dict]:
    """Per-core tables as JSON-compatible dicts (for ``--json --disasm``)."""
    from emulator.errors import InputError

    if core is not None and not 0 <= core < len(chip.cores):
        raise InputError(f"--core {core}: the chip has cores 0..{len(chip.cores) - 1}")
    out = []
    for c in chip.cores if core is None else [chip.cores[core]]:
        out.append({
            "id": c.id, "chip": c.chip, "x": c.x, "y": c.y, "neurons": c.n_neurons,
            "axons": c.n_axons, "synapses": c.n_synapses, "words": c.n_words, "routes": c.n_routes,
            "slices": [[chip.populations[p].name, s, e] for p, s, e in c.slices.tolist()],
            "cx": _jsonable(c.cx), "vth": _jsonable(c.vth), "acc_exp": _jsonable(c.acc_exp),
            "fmt": _jsonable(c.fmt), "neuron": _jsonable(c.neuron), "axon": _jsonable(c.axon),
            "synapses_by_axon": [
                [[int(c.syn_comp[k]), int(c.syn_w[k]), int(c.syn_delay[k])]
                 for k in range(int(c.syn_ptr[a]), int(c.syn_ptr[a + 1]))]
                for a in range(c.n_axons)],
            "routes_by_neuron": [
                [[int(c.route_core[k]), int(c.route_axon[k])]
                 for k in range(int(c.route_ptr[j]), int(c.route_ptr[j + 1]))]
                for j in range(c.n_neurons)],
            "bits": c.bits,
        })
    return out


@click.command("inspect")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--disasm", is_flag=True, help="Dump every core's tables in readable form.")
@click.option("--core", type=int, default=None, help="With --disasm: only this core id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect_cmd(image: str, disasm: bool, core: int | None, as_json: bool) -> None:
    """Show what is in a chip image: family, cores, neurons, synapses, bits, I/O ports.

    The image is fully validated first (a corrupt image is an error naming the section and the
    byte offset)."""
    import emulator

    chip = emulator.load(image)
    if core is not None:
        disasm = True
    if as_json:
        doc = chip.summary()
        if disasm:
            doc["cores"] = core_tables(chip, core)
        click.echo(json.dumps(_jsonable(doc), indent=1, sort_keys=True))
        return
    if disasm:
        click.echo(chip.disasm(core))
    else:
        click.echo(chip.summary_text())


commands = [inspect_cmd]
