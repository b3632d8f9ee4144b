"""avexplorer's core library: audio-visual embedding learning without any GUI dependency."""
