"""The BB-ANS baseline (Townsend et al. 2019): a plain MLP VAE coded with this project's coder."""
