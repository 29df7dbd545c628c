# Stage augment: lhotse RecordingSet manifests of the noise and room impulse responses that the
# training stages mix in (only where augment.noise_prob or augment.reverb_prob is above 0).
#
# Targets:  data/augment/noise_recordings.jsonl.gz   from augment.noise_dir: a MUSAN tree
#                                                    (augment.musan_parts) or any audio directory
#           data/augment/rir_recordings.jsonl.gz     from augment.rir_dir: a RIRS_NOISES tree
#                                                    (augment.rirs_parts) or any audio directory
# A null directory means the corpus's own noise/ and rir/ (the embedded corpus has them). The
# manifests are a data resource shared by every system: systems may differ in probabilities and
# SNRs, but not in these sources (augment_manifest says so when one does).

AUGMENT_KINDS = {"noise": ("noise_dir", "musan_parts"), "rir": ("rir_dir", "rirs_parts")}


def augment_source(kind):
    """The directory the ``kind`` manifest lists: the configured one, else <corpus root>/<kind>."""
    return config["augment"][AUGMENT_KINDS[kind][0]] or f"{CORPUS['root']}/{kind}"


def augment_manifest(settings, kind):
    """data/augment/<kind>_recordings.jsonl.gz, after checking ``settings`` use the configured sources."""
    for key in AUGMENT_KINDS[kind]:
        if settings["augment"][key] != config["augment"][key]:
            raise WorkflowError(
                f"a system sets augment.{key} to {settings['augment'][key]!r}, the config to "
                f"{config['augment'][key]!r}: the {kind} recordings (data/augment/) are shared by every system"
            )
    return f"data/augment/{kind}_recordings.jsonl.gz"


def _augment_source_input(w):
    source = augment_source(w.kind)
    if EMBEDDED and not config["augment"][AUGMENT_KINDS[w.kind][0]]:
        return {"corpus": f"{CORPUS['root']}/vox1_meta.csv"}  # noise/ and rir/ come with the corpus
    return {"source": source}


rule augment_manifest:
    input:
        unpack(_augment_source_input),
    output:
        manifest="data/augment/{kind}_recordings.jsonl.gz",
    wildcard_constraints:
        kind="noise|rir",
    params:
        stage=f"{BASE}/steps/make_augment_manifest.sh",
        source=lambda w: augment_source(w.kind),
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
    shell:
        "{params.stage} {params.parts} {wildcards.kind} {params.source:q} {output.manifest} > {log} 2>&1"
