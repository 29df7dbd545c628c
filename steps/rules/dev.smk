# Stage dev_trials (only with finetune.dev_speakers > 0): hold out training speakers and write
# a trial list over them, on which hyper-parameters are chosen (never on the test lists).
#
# Target:  data/{TRAIN_SET}/trials/dev_val  and  data/{TRAIN_SET}/dev_speakers
# The finetune rule leaves the listed speakers out of training; the embeddings of the training
# set, which mean subtraction needs anyway, score the list.

if DEV_SPEAKERS:

    rule dev_trials:
        """Pick finetune.dev_speakers training speakers and write their trials (spectral-make-dev-trials)."""
        input:
            wav_scp=f"data/{TRAIN_SET}/wav.scp",  # the prepare rules declare wav.scp; utt2spk is written beside it
        output:
            trials=f"data/{TRAIN_SET}/trials/dev_val",
            speakers=f"data/{TRAIN_SET}/dev_speakers",
        params:
            speakers=DEV_SPEAKERS,
            trials=config["finetune"]["dev_trials"],
            data=lambda w, input: os.path.dirname(input.wav_scp),
        resources:
            mem_mb=1000,
            runtime=5,
            cpus_per_task=1,
        log:
            "logs/dev_trials.log",
        conda:
            CONDA_ENV
        shell:
            "spectral-make-dev-trials --speakers {params.speakers} --trials {params.trials}"
            " {params.data} {output.trials} {output.speakers} > {log} 2>&1"
