# Stage augment: lhotse RecordingSet manifests of the noise and room impulse responses that the
# training stages mix in (only where augment.noise_prob or augment.reverb_prob is above 0).
#
# Targets:  data/augment/noise_recordings.jsonl.gz   from augment.noise_dir: a MUSAN tree
#                                                    (augment.musan_parts) or any audio directory
#           data/augment/rir_recordings.jsonl.gz     from augment.rir_dir: a RIRS_NOISES tree
#                                                    (augment.rirs_parts) or any audio directory
# A null directory means the corpus's own noise/ and rir/ (the embedded corpus has them). The
# manifests are a data resource shared by every system: systems may differ in probabilities and
# SNRs, but not in these sources (PLAN.augment_inputs says so when one does).
# Calls steps/make_augment_manifest.sh -> python -m spectral.augment (spectral.augment.write_manifest).


rule augment_manifest:
    input:
        unpack(lambda w: PLAN.augment_source_input(w.kind)),
    output:
        manifest="data/augment/{kind}_recordings.jsonl.gz",
    wildcard_constraints:
        kind="noise|rir",
    params:
        stage=f"{BASE}/steps/make_augment_manifest.sh",
        source=lambda w: PLAN.augment_source(w.kind),
        parts=lambda w: (
            f"--musan-parts {','.join(config['augment']['musan_parts'])}"
            if w.kind == "noise"
            else f"--rirs-parts {','.join(config['augment']['rirs_parts'])}"
        ),
    resources:
        mem_mb=1000,
        runtime=30,
    log:
        "logs/augment/{kind}.log",
    benchmark:
        "benchmarks/augment/{kind}.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} {params.parts} {wildcards.kind} {params.source:q} {output.manifest} > {log} 2>&1"
