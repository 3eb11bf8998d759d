#!/usr/bin/env bash
# k8s_seed_faults.sh - k8s_seed.sh (every phase of the seed plan on the
# Kubernetes backend) against a test API server that delays every request
# 20 ms, answers 10% of them 429 TooManyRequests (Retry-After: 1) and ends
# every watch every 5 s: the backend must retry, resume its watches and lose
# no event, and every phase must pass as without faults.
K8S_FAULTS=1 exec bash "$(dirname "$0")/k8s_seed.sh" "$@"
