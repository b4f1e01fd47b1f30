"""Hosts built on ultralytics' YOLO models (imported only when such a host is built: ultralytics is a heavy import).

``two_stream``: the two-stream YOLOv8n of Table 12 as an ultralytics ``DetectionModel`` subclass, importable from
here so that ultralytics' checkpoints (``best.pt``, pickled modules) reload.
"""
