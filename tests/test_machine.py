"""The machine record of every run (topobook.training.machine)."""

from __future__ import annotations

import json

import numpy as np
import torch

from topobook.training.machine import (
    THREAD_VARIABLES,
    cpu_identity,
    cpu_model,
    machine_key,
    machine_record,
)


def test_cpu_model_reads_the_first_model_name(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
                    "flags\t\t: fpu avx2\n\nprocessor\t: 1\nmodel name\t: other\n")
    assert cpu_model(info) == "AMD EPYC 7B13"
    info.write_text("processor\t: 0\nmodel name\t:   \n")  # blank: fall back, never empty
    assert cpu_model(info)
    assert cpu_model(tmp_path / "absent")


def test_cpu_identity_reads_family_model_and_a_hash_of_the_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    block = ("processor\t: {n}\ncpu family\t: 25\nmodel\t\t: {m}\nmodel name\t: AMD EPYC\n"
             "stepping\t: 1\nflags\t\t: {f}\n\n")
    info.write_text(block.format(n=0, m=1, f="fpu avx2 fma") + block.format(n=1, m=17, f="x"))
    zen3 = cpu_identity(info)
    assert {k: zen3[k] for k in ("cpu_family", "model", "stepping")} == {
        "cpu_family": "25", "model": "1", "stepping": "1"}  # the first processor's block
    info.write_text(block.format(n=0, m=1, f="fma avx2 fpu"))  # the same flags, other order
    assert cpu_identity(info) == zen3
    info.write_text(block.format(n=0, m=1, f="fpu avx2 fma avx512f avx512_bf16"))
    assert cpu_identity(info)["flags_sha256"] != zen3["flags_sha256"]
    assert cpu_identity(tmp_path / "absent") == {}


def test_machine_record_is_json_and_names_what_decides_the_kernels(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    record = machine_record()
    assert json.loads(json.dumps(record)) == record
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["torch"] == torch.__version__ and record["numpy"] == np.__version__
    assert record["torch_threads"] == torch.get_num_threads() >= 1
    assert record["thread_variables"]["OMP_NUM_THREADS"] == "1"
    assert "MKL_NUM_THREADS" not in record["thread_variables"]
    assert set(record["thread_variables"]) <= set(THREAD_VARIABLES)


def test_machine_key_tells_machines_apart():
    record = machine_record()
    assert machine_key(record) == machine_key(dict(record))
    other_cpu = {**record, "cpu_capability": "AVX512" if record["cpu_capability"] != "AVX512"
                 else "AVX2"}
    assert machine_key(other_cpu) != machine_key(record)
    other_flags = {**record, "cpu": {**record["cpu"], "flags_sha256": "0" * 12}}
    assert machine_key(other_flags) != machine_key(record)
    # thread settings are a run's, not a machine's
    assert machine_key({**record, "torch_threads": 7}) == machine_key(record)
    assert machine_key(None) == machine_key({}) == ("not recorded",)
