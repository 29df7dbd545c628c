# Stage export: a trained system in formats other tools read (spectral.export, steps/export.sh).
#
# Target:  exp/{system}/export/   hf/ (WavLM/HuBERT, adapters merged), backend.{safetensors,json},
#                                 extractor.{onnx,pt}, peft/ (exactly low-rank methods), export.json
#          `snakemake exported`   the configured system's
# Any system of PLAN.systems (the configured one, the comparison's) can be exported by its path.
# Calls steps/export.sh -> spectral-export (spectral.export.cli.export_system).


rule export:
    """Merged transformers directory, ONNX/TorchScript extractor and peft-format adapter of one system."""
    input:
        unpack(lambda w: PLAN.export_inputs(w.system)),
    output:
        directory("exp/{system}/export"),
    wildcard_constraints:
        system=PLAN.system_pattern(),
    params:
        stage=f"{BASE}/steps/export.sh",
        options=lambda w: PLAN.export_options(w.system),
        what="hf,backend,extractor,peft",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        cpus_per_task=1,
    log:
        "logs/export/{system}.log",
    benchmark:
        "benchmarks/export/{system}.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} --threads {threads} --what {params.what} {params.options}"
        " {input.model} {output} > {log} 2>&1"


rule exported:
    """The configured system's export directory, with its manifest in the report."""
    input:
        f"exp/{PLAN.system}/export",
    output:
        report(f"results/export/{PLAN.system}.json", caption="../report/export.rst", category="Export",
               labels={"system": PLAN.system}),
    log:
        "logs/exported.log",
    conda:
        CONDA_ENV
    shell:
        "cp {input}/export.json {output} 2> {log}"
