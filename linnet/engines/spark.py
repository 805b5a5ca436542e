"""Apache Spark: a ``predict_batch_udf`` that classifies a DataFrame's catalog columns with an export, the
``linnet spark predict`` job for catalog files, and a Structured Streaming job for files as they land.

- `linnet_udf(export_dir, schema)`: ``df.withColumn("category", udf(*input_columns(schema)))``. One struct out
  per row in: `linnet predict`'s columns (``id``, ``path``, ``depth``, ``node_id``, ``confidence``,
  ``full_path``, ``top_k``, ``image_present``, ``error``, ``level_k_node_id|name|confidence``) and
  ``image_problem`` (an image that was named but could not be read or decoded; the row is predicted without it).
  Each Python worker loads the export once (`linnet.engines.signature_batches.load_export`) and calls
  ``serving_default`` on Arrow batches of ``batch_size`` rows; a bad row gets ``error`` set, never a failed task.
- `classify_dataframe`: the same classifier as the UDF run by ``mapInArrow`` (Arrow batches in and out, no pandas
  DataFrame per batch), giving the prediction columns alone: what the two jobs below write.
- `predict_catalog_spark`: catalog files ─► classifier ─► ``OUT/predictions`` (Parquet) and ``OUT/errors``, counted
  while written.
- `classify_stream`: a folder of catalog files ─► classifier ─► Parquet sink, checkpointed: each run (or each
  trigger of a long-running query) classifies only the files that arrived since the last one.

Importing this module does not import Spark or TensorFlow; the functions do.

Example:
    >>> spark = local_session("local[2]")  # doctest: +SKIP
    >>> df = spark.read.json("catalog.jsonl")  # doctest: +SKIP
    >>> udf = linnet_udf("exports/linnet/1")  # doctest: +SKIP
    >>> df.withColumn("category", udf(*input_columns(schema))).select("id", "category.path").show()  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence

import numpy as np

from linnet.data.readers import detect_format
from linnet.data.schema import ATTRIBUTES_FIELD, check_input_columns
from linnet.data.tfrecord import is_url
from linnet.engines.signature_batches import (
    PREDICT_SIGNATURE,
    RowError,
    catalog_rows,
    describe,
    error_columns,
    load_export,
    merge_rows,
    prediction_batch,
    prediction_columns,
    with_nulls,
)
from linnet.errors import ConfigError
from linnet.serving.export import IMAGE_BYTES_INPUT
from linnet.serving.result_columns import column_kind

PREDICTION_COLUMN = "prediction"
IMAGE_PROBLEM = "image_problem"
PREDICTIONS, ERRORS = "predictions", "errors"
_SPARK_FORMATS = {"csv": "csv", "tsv": "csv", "jsonl": "json", "parquet": "parquet"}


def local_session(master: str = "local[2]", app_name: str = "linnet", **config):
    """A SparkSession on this machine (``local[N]``: N worker threads, each with its own Python worker).

    A file is read in splits of at least 64 KiB (``spark.sql.files.openCostInBytes``, Spark's default 4 MiB):
    Spark splits a catalog into as many partitions as cores only when each part is over that size, and a
    catalog of a few MiB read as one partition is classified by one Python worker while the other cores wait.
    The splits are contiguous ranges of the file, so rows keep their order.
    """
    from pyspark.sql import SparkSession  # lazy: Spark starts on demand

    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2",
                       "spark.sql.execution.arrow.pyspark.enabled": "true",
                       "spark.sql.files.openCostInBytes": str(64 * 1024), **config}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def local_session_or_cluster(app_name: str = "linnet"):
    """The session ``spark-submit`` configured (its ``--master``), else ``local[*]``."""
    from pyspark.sql import SparkSession  # lazy: as in local_session

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    from pyspark import SparkConf  # lazy: as above

    if not SparkConf().contains("spark.master"):
        builder = builder.master("local[*]")
    return builder.getOrCreate()


def input_columns(schema) -> list[str]:
    """The catalog columns the UDF reads, in the order it takes them: id, text, attribute and image columns."""
    columns = [schema.id_column, *schema.text_columns, *schema.attribute_columns]
    if schema.image_column:
        columns.append(schema.image_column)
    return list(dict.fromkeys(columns))


def _prediction_column_names(num_levels: int) -> list[str]:
    return [*prediction_columns(num_levels), IMAGE_PROBLEM]


def prediction_struct(num_levels: int):
    """The UDF's ``StructType``: `linnet predict`'s columns, typed, and ``image_problem``."""
    from pyspark.sql import types  # lazy: as in local_session

    kinds = {"long": types.LongType(), "double": types.DoubleType(), "string": types.StringType()}
    return types.StructType([types.StructField(column, kinds[column_kind(column)], True)
                             for column in _prediction_column_names(num_levels)])


def _batch_classifier(export_dir: str, schema, columns: Sequence[str], image_root: str | None):
    """Load the export once in this Python worker; returns a function from one batch of catalog columns (arrays in
    the order of ``columns``) to the prediction columns (`prediction_struct`'s names; absent numbers NaN or None)."""
    export = load_export(export_dir)
    num_levels = export.taxonomy.num_levels
    with_image = bool(export.image_size)

    def classify(arrays) -> dict[str, np.ndarray]:
        records = [dict(zip(columns, values)) for values in zip(*arrays)]
        items = list(catalog_rows(enumerate(records, start=1), schema, export.text_fields, with_image,
                                  location_kind="row", image_root=image_root))
        good = [place for place, item in enumerate(items) if not isinstance(item, RowError)]
        bad = [place for place, item in enumerate(items) if isinstance(item, RowError)]
        rows = [items[place] for place in good]
        predicted, problems = prediction_batch(rows, export.run(PREDICT_SIGNATURE, rows), export.taxonomy)
        unread = error_columns([items[place].id for place in bad], [items[place].problem for place in bad],
                               num_levels)
        results = merge_rows(len(items), [(np.array(good, np.int64), predicted), (np.array(bad, np.int64), unread)])
        image_problems = {problem.id: problem.problem for problem in problems if problem.field == IMAGE_BYTES_INPUT}
        results[IMAGE_PROBLEM] = (np.array([image_problems.get(item.id) for item in items], dtype=object)
                                  if image_problems else np.full(len(items), None, dtype=object))
        return results

    return classify


def _predict_function(export_dir: str, schema, columns: Sequence[str], image_root: str | None):
    """``predict_batch_udf``'s factory: load the export once in this Python worker, then classify batches."""
    classify = _batch_classifier(export_dir, schema, columns, image_root)
    names = _prediction_column_names(load_export(export_dir).taxonomy.num_levels)

    def predict(*arrays):
        results = classify(arrays)
        # columns, not rows (predict_batch_udf's row form refuses None in a struct field); a null is None
        return {name: with_nulls(results[name]) for name in names}

    # predict_batch_udf passes one array per column when the function names as many parameters
    predict.__signature__ = inspect.Signature([inspect.Parameter(f"column_{index}", inspect.Parameter.POSITIONAL_ONLY)
                                               for index in range(len(columns))])
    return predict


def _classify_arrow_batches(export_dir: str, schema, columns: Sequence[str], image_root: str | None,
                            batch_size: int, num_levels: int, batches):
    """``mapInArrow``'s function: Arrow record batches of ``columns`` in, record batches of `prediction_struct`'s
    columns out, ``batch_size`` rows per model call, one row out per row in (no pandas either way)."""
    import pyarrow as pa  # lazy: runs in Spark's Python workers

    classify = _batch_classifier(export_dir, schema, columns, image_root)
    kinds = {"long": pa.int64(), "double": pa.float64(), "string": pa.string()}
    arrow_schema = pa.schema([pa.field(name, kinds[column_kind(name)]) for name in _prediction_column_names(num_levels)])
    for batch in batches:
        for start in range(0, batch.num_rows, batch_size):
            part = batch.slice(start, batch_size)
            results = classify([part.column(name).to_numpy(zero_copy_only=False) for name in columns])
            # from_pandas: NaN (an absent confidence) and None are nulls
            yield pa.RecordBatch.from_arrays([pa.array(results[field.name], field.type, from_pandas=True)
                                              for field in arrow_schema], schema=arrow_schema)


def linnet_udf(export_dir, schema=None, batch_size: int = 256, image_root=None):
    """A ``predict_batch_udf`` classifying rows of catalog columns (`input_columns` of ``schema``, default the
    export's) into `prediction_struct`: ``df.withColumn("category", linnet_udf(export)(*input_columns(schema)))``.

    Relative image paths and fetched URLs are found in the schema's ``image_root``, else ``image_root`` (else the
    working directory of each worker).
    """
    import functools

    from pyspark.ml.functions import predict_batch_udf  # lazy: as in local_session

    artifact, schema, worker_arguments = _worker_arguments(export_dir, schema, image_root)
    return predict_batch_udf(functools.partial(_predict_function, *worker_arguments),
                             return_type=prediction_struct(artifact.taxonomy.num_levels), batch_size=int(batch_size))


def _worker_arguments(export_dir, schema, image_root):
    """The export's `describe`, the schema (default the export's) and what each Python worker is given: the export
    path (absolute; a URL stays one, each worker copies it: `local_export`), schema, input columns, image root.

    Raises:
        ConfigError: no schema, or a model reading attributes from a schema without attribute columns.
    """
    artifact = describe(export_dir)
    schema = schema or artifact.schema
    if schema is None:
        raise ConfigError(f"{export_dir}: the export saved no schema; pass schema=")
    if ATTRIBUTES_FIELD in artifact.text_fields and not schema.attribute_columns:
        raise ConfigError(f"{export_dir}: the model reads attributes; the schema names no attribute columns")
    export_dir = os.fspath(export_dir)
    return artifact, schema, (export_dir if is_url(export_dir) else os.path.abspath(export_dir), schema,
                              input_columns(schema), os.fspath(image_root) if image_root else None)


def _checked_schema(df, export_dir, schema):
    schema = schema or describe(export_dir).schema
    missing = [name for name in input_columns(schema) if name not in df.columns]
    if missing:
        raise ConfigError(f"the DataFrame has no column(s) {missing}; it has {df.columns}")
    return schema


def predict_dataframe(df, export_dir, schema=None, batch_size: int = 256, column: str = PREDICTION_COLUMN,
                      image_root=None):
    """``df`` with a ``column`` struct of predictions (one per row; `linnet_udf` over `input_columns`)."""
    schema = _checked_schema(df, export_dir, schema)
    udf = linnet_udf(export_dir, schema, batch_size, image_root)
    return df.withColumn(column, udf(*input_columns(schema)))


def classify_dataframe(df, export_dir, schema=None, batch_size: int = 256, image_root=None):
    """The prediction columns alone (`prediction_struct`'s, one row per row of ``df``), what the jobs write.

    The same classifier as `linnet_udf`, run by ``mapInArrow``: Arrow batches go to the Python workers and come
    back without a pandas DataFrame either way, which `predict_batch_udf` builds for every batch (measured: a
    job's fixed Python work per batch about halves; docs/scale.md).
    """
    import functools

    artifact, schema, worker_arguments = _worker_arguments(export_dir, _checked_schema(df, export_dir, schema),
                                                           image_root)
    num_levels = artifact.taxonomy.num_levels
    function = functools.partial(_classify_arrow_batches, *worker_arguments, int(batch_size), num_levels)
    return df.select(*input_columns(schema)).mapInArrow(function, prediction_struct(num_levels))


def _reader(spark_reader, format: str):
    if format in ("csv", "tsv"):
        spark_reader = (spark_reader.option("header", True).option("multiLine", True).option("escape", '"')
                        .option("sep", "\t" if format == "tsv" else ","))
    return spark_reader.format(_SPARK_FORMATS[format])


def _catalog_format(path: str, format: str | None) -> str:
    return format or detect_format(path.replace("*", "x"))


def _string_schema(schema):
    from pyspark.sql import types  # lazy: as in local_session

    return types.StructType([types.StructField(name, types.StringType(), True) for name in input_columns(schema)])


def _failed():
    """Spark's test of a prediction row without a prediction (``error`` set)."""
    from pyspark.sql import functions  # lazy: as in local_session

    return functions.col("error").isNotNull() & (functions.col("error") != "")


def _error_rows(predictions):
    from pyspark.sql import functions  # lazy: as in local_session

    failed = predictions.where(_failed())
    images = predictions.where(functions.col(IMAGE_PROBLEM).isNotNull())
    return (failed.select("id", functions.lit(None).cast("string").alias("field"), functions.col("error")
                          .alias("problem"))
            .unionByName(images.select("id", functions.lit("image_bytes").alias("field"),
                                       functions.col(IMAGE_PROBLEM).alias("problem"))))


def predict_catalog_spark(spark, export_dir, catalog: str, out_dir: str, schema=None, format: str | None = None,
                          batch_size: int = 256) -> dict:
    """`linnet predict` as a Spark job: ``OUT/predictions`` (Parquet, one row per catalog row) and ``OUT/errors``
    (``id``, ``field``, ``problem``: rows without a prediction and images that could not be used).

    Returns:
        ``{"rows": rows written, "errors": error rows, "out": OUT}``.
    """
    from pyspark.sql import Observation, functions  # lazy: as in local_session

    schema = schema or describe(export_dir).schema
    format = _catalog_format(catalog, format)
    df = _reader(spark.read, format)
    if format == "jsonl":  # by name; a CSV reader given a schema would apply it by position
        df = df.schema(_string_schema(schema))
    catalog_df = df.load(catalog)  # CSV: every column a string, named by the header
    if format != "jsonl":  # a JSONL read above is given every column; CSV/Parquet headers are checked
        check_input_columns(schema, catalog_df.columns, catalog)
    image_root = os.path.dirname(os.path.abspath(catalog)) if "://" not in catalog else None  # as linnet predict
    predicted = classify_dataframe(catalog_df, export_dir, schema, batch_size, image_root=image_root)
    predictions_dir, errors_dir = os.path.join(out_dir, PREDICTIONS), os.path.join(out_dir, ERRORS)
    # counted while the predictions are written (no second pass over them); the model runs once
    observation = Observation("linnet_predictions")
    predicted.observe(observation, functions.count(functions.lit(1)).alias("rows"),
                      functions.count(functions.when(_failed(), 1)).alias("failed"),
                      functions.count(IMAGE_PROBLEM).alias("image_problems")
                      ).write.mode("overwrite").parquet(predictions_dir)
    counts = observation.get
    errors = counts["failed"] + counts["image_problems"]
    # the errors come from the written rows, read back only when there are some (else an empty dataset: its
    # schema, not the union of two empty queries, which Spark runs as a job of 4 tasks)
    error_rows = _error_rows(spark.read.parquet(predictions_dir) if errors else
                             spark.createDataFrame([], predicted.schema))
    (error_rows if errors else spark.createDataFrame([], error_rows.schema)).write.mode("overwrite").parquet(errors_dir)
    return {"rows": counts["rows"], "errors": errors, "out": out_dir}


def classify_stream(spark, export_dir, source_dir: str, out_dir: str, checkpoint_dir: str, schema=None,
                    format: str = "jsonl", batch_size: int = 256, available_now: bool = True,
                    processing_time: str | None = None):
    """Classify catalog files as they land in ``source_dir`` (Structured Streaming: file source ─► UDF ─►
    Parquet sink in ``out_dir``, progress in ``checkpoint_dir``).

    Args:
        format: ``jsonl`` (read by column name), ``csv``/``tsv`` (with a header) or ``parquet``; for the last
            three the folder must already hold a file when the query starts (its columns are the stream's).
        available_now: process every file not yet seen, then stop (``trigger(availableNow=True)``: a scheduled
            job, and the tests); False with ``processing_time`` (e.g. ``"1 minute"``) keeps the query running.

    Returns:
        The `StreamingQuery` (finished when ``available_now``).
    """
    schema = schema or describe(export_dir).schema
    if format in ("csv", "tsv"):  # the header's columns, as strings, from the files already there
        columns = _reader(spark.read, format).load(source_dir).schema
    elif format == "parquet":
        columns = spark.read.parquet(source_dir).schema
    else:
        columns = _string_schema(schema)
    stream = _reader(spark.readStream, format).schema(columns).load(source_dir)
    predicted = classify_dataframe(stream, export_dir, schema, batch_size, image_root=source_dir)
    writer = (predicted.writeStream.format("parquet").option("path", out_dir)
              .option("checkpointLocation", checkpoint_dir).outputMode("append"))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=processing_time or "1 minute")
    query = writer.start()
    if available_now:
        query.awaitTermination()
    return query
