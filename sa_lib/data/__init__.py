"""Data: reading user images, the demo photos and COCO, evaluation pairs, reference ranking, augmentation."""
