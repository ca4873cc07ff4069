"""Batch jobs over many items, traced and measured: ``llm_otel.batch_job("name", total=N)``.

One span per run and per item (an item's LLM calls nest under it, from any thread or task), the
``llm_otel.job.items`` counter by outcome, and gauges of progress, remaining items, throughput,
ETA and the last progress, for the stalled-job and failure-ratio alerts. docs/batch.md.
"""

from llm_otel.jobs._job import BatchJob, JobItem, batch_job, current_job

__all__ = ["BatchJob", "JobItem", "batch_job", "current_job"]
