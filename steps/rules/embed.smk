# Stage embed: the speaker embedding of every utterance of a set, and each speaker's mean.
#
# Target:  exp/{system}/embeddings/{set}/{xvector,spk_xvector}.{ark,scp}
# Calls spectral-embed (spectral.embed.embed_set) directly: the stage needs no shell logic.
# A trial set holding the training set's utterances reuses their embeddings (PLAN.embed_inputs).


rule embed:
    input:
        unpack(lambda w: PLAN.embed_inputs(w.system, w.set)),
    output:
        xvector="exp/{system}/embeddings/{set}/xvector.scp",
        spk_xvector="exp/{system}/embeddings/{set}/spk_xvector.scp",
    params:
        max_seconds=config["embed"]["max_seconds"],
        crops=config["embed"]["crops"],
        crop_seconds=config["embed"]["crop_seconds"],
        device=config["embed"]["device"],
        precision=config["embed"]["precision"],
        batch_seconds=config["embed"]["batch_seconds"],
        options=lambda w: PLAN.embed_options(w.system, w.set),
        data=lambda w: f"data/{w.set}",
        train_data=lambda w, input: os.path.dirname(input.train),
        out_dir=lambda w, output: os.path.dirname(output.xvector),
    threads: config["embed"]["threads"]
    resources:
        mem_mb=3000,
        runtime=30,
        cpus_per_task=config["embed"]["threads"],
        gpu=PLAN.gpus("embed"),
    log:
        "logs/embed/{system}/{set}.log",
    benchmark:
        "benchmarks/embed/{system}/{set}.tsv"
    conda:
        CONDA_ENV
    shell:
        "spectral-embed --no-progress --speaker-means --threads {threads} --max-seconds {params.max_seconds}"
        " --crops {params.crops} --crop-seconds {params.crop_seconds} --device {params.device}"
        " --precision {params.precision} --batch-seconds {params.batch_seconds} {params.options} --train-data-dir {params.train_data}"
        " {input.model} {params.data} {params.out_dir} > {log} 2>&1"
