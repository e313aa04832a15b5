"""Stage 4: the device. Flash with PlatformIO, talk to the firmware over serial (pyserial), read and
verify its benchmark report. Modelled on PlatformIO core's device/ and pyserial's tools/."""
