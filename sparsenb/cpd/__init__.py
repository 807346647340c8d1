"""Change-point detection: the ALACPD detector, TCPDBench's metrics and the ``ruptures`` baselines.

* :mod:`.alacpd`: ALACPD (Atashgahi et al. 2022), a skip-LSTM autoencoder ensemble and the
  memory-free online detector.
* :mod:`.metrics`: F1 and covering exactly as TCPDBench defines them.
* :mod:`.baselines`: PELT / BinSeg / BottomUp / Window from ``ruptures`` (extra ``timeseries``)
  with TCPDBench's default and oracle protocols, and the zero detector.

The TCPD series themselves are data: :mod:`sparsenb.data.tcpd`.
"""
