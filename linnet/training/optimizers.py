"""`VariableSplitOptimizer`: two optimizers for one model, split by variable (Keras 3 has no MultiOptimizer).

``training.optimizer.name: separate`` trains the text encoder with AdamW (`linnet.encoders.LazyAdamW`,
sparse updates of hashed tables) and the image encoder plus heads with SGD and momentum, a common recipe
when fine-tuning a pretrained text encoder next to a convolutional image encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras


@keras.saving.register_keras_serializable(package="linnet")
class VariableSplitOptimizer(keras.optimizers.Optimizer):
    """Routes each variable's gradient to ``first`` (paths in ``first_variable_paths``) or ``second``.

    ``iterations`` and ``learning_rate`` are those of ``second`` (the heads' optimizer), so learning-rate
    logging and schedules behave as with a single optimizer.

    Args:
        first: optimizer of the listed variables (e.g. the text encoder's).
        second: optimizer of every other variable.
        first_variable_paths: ``variable.path`` of each variable that ``first`` trains.
        name: optimizer name.

    Example:
        >>> import numpy as np
        >>> a, b = keras.Variable(np.ones(2), name="a"), keras.Variable(np.ones(2), name="b")
        >>> optimizer = VariableSplitOptimizer(keras.optimizers.SGD(0.5), keras.optimizers.SGD(0.1), [a.path])
        >>> optimizer.apply([np.ones(2), np.ones(2)], [a, b])
        >>> [round(float(a.numpy()[0]), 2), round(float(b.numpy()[0]), 2)]
        [0.5, 0.9]
    """

    def __init__(self, first, second, first_variable_paths: Sequence[str] = (), name: str = "variable_split_optimizer",
                 **kwargs):
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.first = keras.optimizers.get(first)
        self.second = keras.optimizers.get(second)
        self.first_variable_paths = list(first_variable_paths)

    def _split(self, variables):
        chosen = set(self.first_variable_paths)
        first = [variable for variable in variables if variable.path in chosen]
        second = [variable for variable in variables if variable.path not in chosen]
        return first, second

    def build(self, var_list):
        first, second = self._split(var_list)
        self.first.build(first)
        self.second.build(second)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.first.variables + self.second.variables

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        if not self.built:
            self.build(trainable_variables)
            self.built = True
        chosen = set(self.first_variable_paths)
        first = [(grad, variable) for grad, variable in zip(grads, trainable_variables) if variable.path in chosen]
        second = [(grad, variable) for grad, variable in zip(grads, trainable_variables) if variable.path not in chosen]
        if first:
            self.first.apply([grad for grad, _ in first], [variable for _, variable in first])
        if second:
            self.second.apply([grad for grad, _ in second], [variable for _, variable in second])

    def apply_gradients(self, grads_and_vars):
        grads, variables = zip(*grads_and_vars)
        self.apply(list(grads), list(variables))
        return self.iterations

    @property
    def learning_rate(self):
        return self.second.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        # The base constructor sets a placeholder rate before `second` exists.
        if "second" in self.__dict__:
            self.second.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.second.iterations

    def finalize_variable_values(self, var_list):
        first, second = self._split(var_list)
        self.first.finalize_variable_values(first)
        self.second.finalize_variable_values(second)

    def get_config(self):
        return {
            "name": self.name,
            "first": keras.optimizers.serialize(self.first),
            "second": keras.optimizers.serialize(self.second),
            "first_variable_paths": list(self.first_variable_paths),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["first"] = keras.optimizers.deserialize(config["first"], custom_objects=custom_objects)
        config["second"] = keras.optimizers.deserialize(config["second"], custom_objects=custom_objects)
        return cls(**config)
