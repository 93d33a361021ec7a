"""Sample inputs synthesized from what a pipeline's config says about its skipped data-loading steps.

schema.py: config -> DatasetSchema (columns, types, label, id, format, shards, where each came from);
generate.py: DatasetSchema + rows + seed -> columns of values with a learnable signal;
write.py: the files a loader delivers (data shards, signature, metadata), byte-identical per seed;
apply.py: a draft plan's pending inputs fed from synthesized folders, recorded in the plan.
numpy and pyarrow come with the optional extra ``rtest[synth]``.
"""
