# Stage features: Kaldi-compatible 80-dim log-mel fbank for every data set.
#
# Target:  data/{set}/feats.scp
# Calls steps/make_fbank.sh -> spectral-features (spectral.features.compute_fbank).


rule fbank:
    input:
        wav_scp="data/{set}/wav.scp",
    output:
        "data/{set}/feats.scp",
    params:
        stage=f"{BASE}/steps/make_fbank.sh",
        bins=config["features"]["num_mel_bins"],
        frame_length=config["features"]["frame_length_ms"],
        frame_shift=config["features"]["frame_shift_ms"],
        dither=config["features"]["dither"],
    threads: config["features"]["nj"]
    resources:
        mem_mb=2000,
        runtime=60,
        cpus_per_task=config["features"]["nj"],
    log:
        "logs/features/{set}.log",
    benchmark:
        "benchmarks/features/{set}.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} --nj {threads} --num-mel-bins {params.bins}"
        " --frame-length-ms {params.frame_length} --frame-shift-ms {params.frame_shift}"
        " --dither {params.dither} data/{wildcards.set} > {log} 2>&1"
