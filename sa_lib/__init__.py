"""superattn: the runnable companion to "Super-attention for exemplar-based image colorization"
(Carrillo, Clement, Bugeau, ACCV 2022). Start with `sa_lib.model.build_model` and the README."""

__version__ = "0.1.0"
