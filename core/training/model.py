"""The two modality encoders f_a, f_v and the shared label head g."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.training.config import ModelConfig


def mlp_encoder(in_dim: int, cfg: ModelConfig) -> nn.Sequential:
    act = nn.GELU() if cfg.activation == "gelu" else nn.ReLU()
    return nn.Sequential(
        nn.Linear(in_dim, cfg.hidden), act, nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.dim)
    )


class AVEmbedder(nn.Module):
    """Maps audio and visual features into one L2-normalised d-dimensional space."""

    def __init__(self, audio_dim: int, visual_dim: int, num_classes: int, cfg: ModelConfig):
        super().__init__()
        self.audio_encoder = mlp_encoder(audio_dim, cfg)
        self.visual_encoder = mlp_encoder(visual_dim, cfg)
        self.head = nn.Linear(cfg.dim, num_classes)  # g, shared by both modalities
        self.logit_scale = cfg.logit_scale
        # Input standardisation, identity until set_input_stats; saved with the weights.
        self.register_buffer("audio_mean", torch.zeros(audio_dim))
        self.register_buffer("audio_std", torch.ones(audio_dim))
        self.register_buffer("visual_mean", torch.zeros(visual_dim))
        self.register_buffer("visual_std", torch.ones(visual_dim))

    @torch.no_grad()
    def set_input_stats(self, audio: torch.Tensor, visual: torch.Tensor) -> None:
        """Standardise inputs with these (train) features' per-dimension mean and std."""
        moments = []
        for x in (audio, visual):
            x = torch.as_tensor(x, dtype=torch.float32)
            moments.append((x.mean(dim=0), x.std(dim=0)))
        self.set_input_moments(*moments)

    def set_input_moments(self, audio: tuple[Any, Any], visual: tuple[Any, Any]) -> None:
        """Standardise inputs with given (mean, std) per dimension, as computed elsewhere (in
        chunks, for train features read from disk)."""
        for name, (mean, std) in (("audio", audio), ("visual", visual)):
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(mean, dtype=torch.float32))
            std = torch.as_tensor(std, dtype=torch.float32)
            getattr(self, f"{name}_std").copy_(std.clamp_min(1e-6))

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.audio_mean) / self.audio_std
        return nn.functional.normalize(self.audio_encoder(x), dim=1)

    def embed_visual(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.visual_mean) / self.visual_std
        return nn.functional.normalize(self.visual_encoder(x), dim=1)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z) * self.logit_scale

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_audio(audio), self.embed_visual(visual)
