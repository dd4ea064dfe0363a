"""Training: one model and one step for every backbone and every method.

config.py       TrainConfig and EvalConfig (the flags of sllmr-train and sllmr-eval)
methods.py      what each --method does with the LLM pairs
pairs_table.py  the LLM pairs in memory, indexed by user, with their gate signals
join.py         the streaming tf.data join of interaction batches with pairs
gate.py         the reliability gate
model.py        the training model (train_step / test_step)
evaluation.py   segment metrics with intervals (metrics.json)
prediction.py   a backbone's predictions over a split, and the evaluation of a finished run
gate_report.py  the trained gate over every pair once (metrics.json's gate block)
callbacks.py    early stopping that survives a restart, gate histograms, progress
report.py       metrics.json as printed text
artifacts.py    the model_dir layout
trainer.py      the whole run, as the sllmr-train binary does it
"""
