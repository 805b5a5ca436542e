"""Two Keras 3.15 fixes that ``model.fit`` needs under ``MultiWorkerMirroredStrategy`` (several processes).

``keras_multi_worker_fixes(strategy)`` applies them for the duration of a ``with`` block, and only when
``strategy`` really spans several workers; under the default strategy and ``MirroredStrategy`` it does
nothing, so single-process training runs exactly Keras's own code.

1. Before the first step, ``TensorFlowTrainer._maybe_symbolic_build`` (keras/src/backend/tensorflow/
   trainer.py) builds losses and metrics from a sample batch that it first averages across replicas with
   ``strategy.reduce("MEAN", batch, axis=None)``. ``MirroredStrategy`` maps that reduction over a nested
   batch; the multi-worker strategy (``CollectiveAllReduceExtended._reduce_to``) does not, and fails on any
   dict batch with ``ValueError: Attempt to convert a value ({...: PerReplica...}) with an unsupported type
   (<class 'dict'>) to a Tensor`` (keras-team/keras#20329). The build only reads the batch's shapes and
   dtypes, so the fix hands it this worker's own part of the batch instead of the average.
2. After every step, ``reduce_per_replica`` in the same file reduces the step's logs (scalar losses and
   metric results) on a multi-worker strategy with ``strategy.reduce("MEAN", value, axis=0)``, which fails
   on scalars: ``Invalid reduction dimension 0 for input with 0 dimensions`` (tensorflow/tensorflow#72388;
   ``Model.distribute_reduction_method`` is never read by the Keras 3 trainer, so it cannot be switched).
   The fix reduces those logs with ``axis=None``: the mean over replicas, the same value Keras reports
   under ``MirroredStrategy``. ``predict``'s ``concat`` reduction is left to Keras.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

__all__ = ["is_multi_worker", "keras_multi_worker_fixes", "shard_by_data"]


def is_multi_worker(strategy) -> bool:
    """True when ``strategy`` is a ``MultiWorkerMirroredStrategy`` over more than one worker."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
        strategy.extended._in_multi_worker_mode()


def shard_by_data(dataset):
    """``dataset`` with ``auto_shard_policy`` DATA: every worker builds the whole pipeline (same seeded
    shuffle) and takes its part of each global batch.

    The default (AUTO) picks the same for in-memory catalogs but would shard by files when it finds a file
    reader in the pipeline, giving each worker other batches and, with fewer files than workers, none.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@contextlib.contextmanager
def keras_multi_worker_fixes(strategy):
    """Within the block, Keras's TensorFlow trainer works around the two multi-worker bugs above."""
    if not is_multi_worker(strategy):
        yield
        return
    original_reduce = tf_trainer.reduce_per_replica
    original_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not is_multi_worker(strategy):
            return original_reduce(values, strategy, reduction)
        return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = tf.nest.map_structure(
                    lambda value: (self.distribute_strategy.experimental_local_results(value)[0]
                                   if isinstance(value, tf.distribute.DistributedValues) else value),
                    batch)
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original_reduce
        tf_trainer.TensorFlowTrainer._maybe_symbolic_build = original_build
