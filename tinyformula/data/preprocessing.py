"""How to feed a trained model, in words and numbers: what
:func:`tinyformula.data.augment.to_input` does to a batch of images before the model sees it,
written where a deployment reads it (a model's ``tinyformula`` dict, its card, the exported
file's metadata).

The steps, in order: the uint8 image (0..255, H x W x channels, or H x W for grayscale) is
resized to ``resolution`` x ``resolution`` by bilinear interpolation (half-pixel centres, as
``align_corners=False``), antialiased when it shrinks (PIL's ``Image.resize(..., BILINEAR)``
on a float32 image does both, to 1e-3 of torch; on a uint8 image it rounds to whole levels);
each channel is normalised as ``(x - mean) / std`` with mean and std in 0..255
units (not 0..1); a one-channel image is then repeated to 3 channels; the batch is NCHW
float32 (input ``images``, output ``logits`` in an exported ONNX file).
"""

from __future__ import annotations

RESIZE = ("bilinear, half-pixel centres (align_corners=False), antialiased when shrinking: "
          "PIL Image.fromarray(channel.astype(float32)).resize((R, R), Image.BILINEAR) per "
          "channel, or torch.nn.functional.interpolate(x, (R, R), mode='bilinear', "
          "align_corners=False, antialias=True)")


def preprocessing(resolution: int, mean=None, std=None, channels: int | None = None) -> dict:
    """The preprocessing of a model fed ``resolution`` px images whose training data had
    these per-channel ``mean`` and ``std`` (0..255 units) and ``channels`` (None before the
    model is trained: its data decides them).

    Plain data: ``resolution``, ``resize``, ``scale``, ``mean``, ``std``, ``channels_in``
    (the data's), ``channels`` (the model's: 3), ``grayscale`` (what happens to one
    channel), ``layout``, ``input_name``, ``output_name`` and ``steps`` (all of it in
    words, in order).
    """
    trained = mean is not None and std is not None
    grayscale = ("repeated to 3 channels after normalising" if channels == 1 else
                 "repeat a grayscale image to 3 channels after normalising")
    steps = [f"resize to {resolution} x {resolution} px: {RESIZE}",
             "keep pixel values in 0..255 (do not divide by 255)",
             ("normalise each channel: (x - mean) / std, with mean "
              f"{[round(v, 4) for v in mean]} and std {[round(v, 4) for v in std]}"
              if trained else "normalise each channel: (x - mean) / std with the training "
                              "data's mean and std (known once the model is trained)"),
             grayscale,
             "batch as NCHW float32: input 'images' (batch, 3, R, R), output 'logits' "
             "(batch, classes); top-1 is the arg-max"]
    return {"resolution": int(resolution), "resize": RESIZE, "scale": "0..255",
            "mean": list(mean) if trained else None, "std": list(std) if trained else None,
            "channels_in": channels, "channels": 3, "grayscale": grayscale,
            "layout": "NCHW float32", "input_name": "images", "output_name": "logits",
            "steps": steps}
