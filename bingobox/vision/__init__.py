"""Vision: QR entry codes (pyzbar) and face enrolment/matching (face_recognition). Frames stay in memory."""
