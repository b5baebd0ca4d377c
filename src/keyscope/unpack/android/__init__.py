"""Android app formats inside an APK/AAB (itself a zip, unpacked by ``archives``):
DEX string tables (``dex``), binary XML (``axml``) and the compiled resource table
(``arsc``), each an expander that claims its bytes by magic. ``binary`` reads their
untrusted bytes within bounds; ``stringpool`` decodes the pool AXML and ARSC share."""
