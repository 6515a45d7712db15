"""Models: masking, STTFormer blocks, encoder, latent spaces, decoder, pre-training models,
classifier, cost counts. See ``docs/architecture.md`` (Models) for the contract.

* :func:`skel.models.masking.random_masking` -> :class:`~skel.models.masking.Mask`
* :class:`skel.models.sttformer.STTFormerBlock`
* :class:`skel.models.encoder.Encoder`, :data:`~skel.models.encoder.ENCODER_PRESETS`
* :func:`skel.models.latent.build_latent` ("none" | "vae" | "vq")
* :class:`skel.models.decoder.Decoder`
* :func:`skel.models.pretrain.build_pretrain_model`
* :func:`skel.models.classifier.build_classifier`
* :func:`skel.models.cost.cost_table`
"""

from skel.models.classifier import Classifier, build_classifier
from skel.models.encoder import ENCODER_PRESETS, Encoder
from skel.models.latent import build_latent
from skel.models.masking import Mask, random_masking
from skel.models.pretrain import PretrainModel, build_pretrain_model

__all__ = ["ENCODER_PRESETS", "Classifier", "Encoder", "Mask", "PretrainModel", "build_classifier",
           "build_latent", "build_pretrain_model", "random_masking"]
