"""The ultralytics runner: the two-stream YOLOv8n of Table 12 trained by pip ``ultralytics`` itself.

``trainer`` (a ``DetectionTrainer`` subclass: the 6-channel RGB+IR data set, the two-stream model, the MWAM and
SDE training plug-ins in ultralytics' loop, logging), ``validator`` (a ``DetectionValidator`` subclass: the same
data set, a second mAP50 from the repository's ``MeanAP50`` on the same predictions, detections kept for figures),
``evaluation`` (every modality subset of the test split), ``arguments`` (a run configuration as ultralytics
arguments), ``runner`` (the engine's runner interface: registry, resume, W&B) and ``figures`` (Fig. 6 / Fig. 7).
Importing this package imports no ultralytics; its modules do, after :func:`models.yolo.offline.ultralytics_offline`.
"""
