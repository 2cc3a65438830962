"""Kubernetes packaging helpers: fetch helm (get_helm), render the chart (render), keep the
chart's copies and k8s/ in sync with the repo (sync)."""
