# Stage dev_trials (only with finetune.dev_speakers > 0): hold out training speakers and write
# a trial list over them, on which hyper-parameters are chosen (never on the test lists).
#
# Target:  data/<train set>/trials/dev_val  and  data/<train set>/dev_speakers
# Calls spectral-make-dev-trials (spectral.corpora.dev_trials.write_dev_trials) directly.
# The finetune rule leaves the listed speakers out of training; the embeddings of the training
# set, which mean subtraction needs anyway, score the list.

if PLAN.dev_speakers:

    rule dev_trials:
        """Pick finetune.dev_speakers training speakers and write their trials (spectral-make-dev-trials)."""
        input:
            wav_scp=PLAN.train_wav_scp,  # the prepare rules declare wav.scp; utt2spk is written beside it
        output:
            trials=PLAN.trials_files["dev_val"],
            speakers=f"data/{PLAN.train_set}/dev_speakers",
        params:
            speakers=PLAN.dev_speakers,
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
