"""``lsbr``: LSB replacement at pseudo-random positions chosen by a key.

What keyed LSB tools write (a password seeds the walk over the samples), and
what the sequential attacks on ``lsb.rgb`` cannot see: the changes are spread
over the whole image, so no prefix of any path holds more of them than the
rest. Only whole-image attacks (WS, SPA, the pairs-of-values histogram) find
them. Framing ``payload + b"\\x00"``, MSB-first, into the R,G,B samples in the
order of the key's own permutation (not ``lsbm``'s: the same key walks another
path); each visited sample gets the message bit as its LSB. Carrier: PNG,
mode RGB. The key is recorded in the sidecar; without it the message cannot
be located. The code is ``lsbm``'s (:func:`stegwatch.stego.lsbm.keyed_lsb_method`).
"""

from __future__ import annotations

from stegwatch.stego.lsbm import keyed_lsb_method

KEY = "lsbr"

METHOD = keyed_lsb_method(KEY, matching=False, stream="keyed RGB LSB (replacement)",
                          description="LSB replacement at key-driven pseudo-random positions")
