"""skel: SkeletonMAE, SkeletonMVAE and SkeletonMVQVAE, reproduced notebook-first.

The notebooks in ``notebooks/`` derive every piece; this package holds the one canonical
implementation they import:

* ``skel.data``   - readers for NTU RGB+D and other skeleton sets, the synthetic default, the feeder
* ``skel.models`` - masking, STTFormer blocks, encoder, latent spaces, decoder, classifier
* ``skel.train``  - pre-training, fine-tuning, linear probe / kNN, checkpoints, several GPUs
* ``skel.bench``  - speed and memory figures

Run ``python -m skel --help`` for the command line.
"""

__version__ = "0.1.0"

from skel.runtime import tune_allocator as _tune_allocator

_tune_allocator()
