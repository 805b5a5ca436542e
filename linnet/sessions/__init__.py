"""Behavioural product embeddings and next-basket recommendations from shopping sequences (event logs of
purchases and clicks): item2vec, time-decayed user vectors, recommenders and their baselines.

Importing this package does not import TensorFlow.
"""
