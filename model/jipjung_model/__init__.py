"""jipjung concentration model package: worker loop, IPC codec, model interface and the default model."""
