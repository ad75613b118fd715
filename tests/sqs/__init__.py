"""Tests of anybatch.sqs: pure decisions, and SQS over real HTTP (moto, respx)."""
