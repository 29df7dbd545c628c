# Stage export: a trained system in formats other tools read (spectral.export, steps/export.sh).
#
# Target:  exp/{system}/export/   hf/ (WavLM/HuBERT, adapters merged), backend.{safetensors,json},
#                                 extractor.{onnx,pt}, peft/ (exactly low-rank methods), export.json
#          `snakemake exported`   the configured system's
# Any system of SYSTEMS (the configured one, the comparison's) can be exported by its path.
# (Functions: steps/rules/common.smk.)


rule export:
    """Merged transformers directory, ONNX/TorchScript extractor and peft-format adapter of one system."""
    input:
        unpack(_export_inputs),
    output:
        directory("exp/{system}/export"),
    wildcard_constraints:
        system="|".join(re.escape(s) for s in SYSTEMS) if SYSTEMS else "NONE",
    params:
        stage=f"{BASE}/steps/export.sh",
        options=_export_options,
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
        f"exp/{SYSTEM}/export",
    output:
        report(f"results/export/{SYSTEM}.json", caption="../report/export.rst", category="Export",
               labels={"system": SYSTEM}),
    log:
        "logs/exported.log",
    conda:
        CONDA_ENV
    shell:
        "cp {input}/export.json {output} 2> {log}"
