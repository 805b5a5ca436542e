"""Scale-out jobs on the engines marketplaces already operate: Apache Beam and Apache Spark adapters around
one core that loads an export once per worker and calls its signatures on batches of raw rows.

Importing this package does not import TensorFlow, Beam or Spark.
"""
