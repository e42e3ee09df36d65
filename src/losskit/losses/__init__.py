"""Loss families; each module holds the functions and their ``nn.Module`` wrappers."""
