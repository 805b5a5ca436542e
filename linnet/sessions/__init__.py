"""Behavioural product embeddings and next-basket recommendations from shopping sequences (event logs of
purchases and clicks): item2vec, time-decayed user vectors, recommenders and their baselines.

Modules, in the order data flows: `events` (read and clean a log; `EventSchema`, `CleaningRules`),
`sequences` (ordered sequences, vocabulary, time split), `cooccurrence`, `baselines`, `metrics`,
`user_vectors`, `config`, `item2vec` (Keras skip-gram), `network` (the Best Buy network), `recommender`
(the default, one ``tf.Module``), `runs` (train / evaluate, the run directory), `export` (SavedModel,
recommend over a run or an export), `vectors` (neighbours, projector, cold start). See docs/sessions.md.

Importing this package does not import TensorFlow (`events`, `sequences`, `baselines`, `metrics`,
`user_vectors`, `config` and `runs` do not either; the others do).
"""
