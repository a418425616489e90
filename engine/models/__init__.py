"""Networks: SpectralDiff U-Net, diffusion process and features, group network, Mamba, the trained model."""
