"""What customers upload: a meter's photo with a self-reading, a ticket's attachments.

A file is judged by its bytes, never by its name or the browser's content type: a PDF renamed
.jpg is not an image. Images are decoded and re-encoded by Pillow, so what is kept is pixels
only (no EXIF position, no comment, nothing appended after the image's end). PDFs cannot be
cleaned that way; they are kept as sent when they look whole (header and %%EOF), and are served
only to their owner and to operators, as downloads (never shown inline).

`accept(data, kinds)` returns a `CleanFile` or raises `Refused` with a message for the user,
next to the upload field; `FileStore.store_bytes` keeps it under its SHA-256.
"""
import io
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # per file: a phone's photo of a meter fits, re-encoded
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES // (1024 * 1024)  # the same limit in the words customers read
# The refusal of a larger file: said by the server, and by the browser before sending one
# (forms.checked_upload).
TOO_LARGE = _l("Il file supera %(mb)d MB.", mb=MAX_UPLOAD_MB)
MAX_IMAGE_PIXELS = 40_000_000  # larger is a decompression bomb, not a photo
MAX_IMAGE_SIDE = 2400  # photos are scaled down to this: readable digits, a few hundred KB
IMAGE_KINDS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png")}
PDF = ("application/pdf", ".pdf")


class Refused(ValueError):
    """An upload that is not kept; str() is the message for the user."""


@dataclass(frozen=True)
class CleanFile:
    data: bytes
    content_type: str
    extension: str  # ".jpg", ".png", ".pdf"


def accept(data, kinds=("image",)):
    """The upload made safe to keep. kinds: "image" (JPEG, PNG), "pdf"."""
    if not data:
        raise Refused(_("Il file è vuoto."))
    if len(data) > MAX_UPLOAD_BYTES:
        raise Refused(str(TOO_LARGE))
    if data.startswith(b"%PDF-"):
        if "pdf" not in kinds:
            raise Refused(allowed_message(kinds))
        if b"%%EOF" not in data[-1024:]:
            raise Refused(_("Il PDF è incompleto o danneggiato."))
        return CleanFile(data, *PDF)
    if "image" not in kinds:
        raise Refused(allowed_message(kinds))
    return clean_image(data, kinds)


def clean_image(data, kinds):
    """Decode a JPEG or PNG fully and encode it anew (scaled down if huge)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_KINDS:
                raise Refused(allowed_message(kinds))
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise Refused(_("L'immagine è troppo grande."))
            image.load()  # decode every pixel: a truncated or forged file fails here
            content_type, extension = IMAGE_KINDS[image.format]
            image = upright(image)
            image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            out = io.BytesIO()
            if extension == ".jpg":
                image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
            else:
                keep = image if image.mode in ("RGB", "RGBA", "L", "LA", "P") else image.convert("RGBA")
                keep.save(out, "PNG", optimize=True)
            return CleanFile(out.getvalue(), content_type, extension)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as error:
        if isinstance(error, Refused):
            raise
        raise Refused(allowed_message(kinds)) from error


def upright(image):
    """The photo as the phone showed it: its EXIF orientation applied (then dropped with the
    rest of the metadata)."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not refuse a good photo
        return image


def allowed_message(kinds):
    if "pdf" in kinds:
        return _("Sono ammessi solo file JPEG, PNG o PDF.")
    return _("Sono ammesse solo immagini JPEG o PNG.")
