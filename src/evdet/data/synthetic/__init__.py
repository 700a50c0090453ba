"""Synthetic traffic-scene event generator (eTraM-like: static elevated camera, 8 classes).

    config      SceneConfig, ClassSpec, preset_config("day" | "night")
    camera      pinhole camera over the ground plane (world metres <-> pixels)
    layout      near + far cross streets, main road, tram, pavements, zebras filling the view; background
    traffic     road users: spawning to a class mix (weighted paths), motion, stops, image boxes
    dvs         DVS pixel model (thresholds with mismatch, refractory period), events from frames
    render      silhouettes + texture, fused with the DVS model, only where something moved
    noise       background activity and hot pixels
    labelling   30 Hz Prophesee boxes of the users that produced events
    sequence    one recording: simulate_sequence
    dataset     generate_dataset: the raw eTraM layout on disk
    preview     render_preview: an event frame with its boxes
"""

from evdet.data.synthetic.config import ClassSpec, SceneConfig, preset_config
from evdet.data.synthetic.dataset import generate_dataset, split_counts
from evdet.data.synthetic.dvs import events_from_log_frames
from evdet.data.synthetic.preview import render_preview
from evdet.data.synthetic.simulate import SyntheticSequence, simulate_sequence

__all__ = ["ClassSpec", "SceneConfig", "SyntheticSequence", "events_from_log_frames",
           "generate_dataset", "preset_config", "render_preview", "simulate_sequence", "split_counts"]
