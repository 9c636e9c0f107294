"""The Alice Blue EC codes the venue answers with, and their messages (``15-error-code.md``).

A failure is ``{"status": "Not_Ok", "message": "EC904"}``: a bare code and no prose (the wire
reference §8, inferred from openalgo's client). The messages are kept here so the venue's logs and
the tests can name them; the wire carries only the code.
"""

from __future__ import annotations

__all__ = ["EMPTY", "LEGACY_POSITION_WORDS", "MESSAGES", "PRODUCT_WORDS"]

MESSAGES: dict[str, str] = {
    "EC003": "An error occurred. Please try again later.",
    "EC087": "Session Expired",
    "EC091": "'orderComplexity' should be one of the following values: {'REGULAR', 'AMO'}.",
    "EC092": "'product' should be one of the following values: {'INTRADAY', 'LONGTERM', 'MTF'}.",
    "EC852": "This product is not allowed.",
    "EC868": "Position not found for the specified instrument.",
    "EC869": "Insufficient buy quantity available for conversion.",
    "EC870": "Insufficient sell quantity available for conversion.",
    "EC873": "Failed to convert positions.",
    "EC900": "'exchange' cannot be empty or null.",
    "EC901": "'exchange' should be one of the following values: { 'NSE', 'BSE', 'MCX', 'NFO', 'BFO', 'CDS', 'BCD'}.",
    "EC903": "'quantity' cannot be empty or null.",
    "EC904": "'quantity' should be a positive number.",
    "EC906": "'product' cannot be empty or null.",
    "EC907": "'transactionType' cannot be empty or null.",
    "EC914": "'Request parameter' cannot be empty or null.",
    "EC916": "No orders found for this user.",
    "EC920": "No positions found for this user.",
    "EC922": "No holdings found for this user.",
    "EC926": "No trades found for this user.",
    "EC929": "'transactionType' should be one of the following values: {'BUY', 'SELL'}.",
    "EC930": "'orderType' should be one of the following values: {'LIMIT', 'MARKET', 'SL', 'SLM'}.",
    "EC932": "'validity' should be one of the following values: {'DAY', 'IOC'}.",
    "EC934": "'orderType' cannot be empty or null.",
    "EC941": "'instrumentId' cannot be empty or null.",
    "EC942": "'orderComplexity' cannot be empty or null.",
    "EC944": "'validity' cannot be empty or null.",
    "EC945": "'brokerOrderId' cannot be empty or null.",
    "EC946": "Invalid 'instrumentId'. It must contain only numeric characters.",
    "EC947": "'instrumentId' does not exist.",
    "EC948": "'quantity' cannot exceed 50,000,000.",
    "EC950": "'price' is required and cannot be empty or null.",
    "EC951": "'slTriggerPrice' is required and cannot be empty or null.",
    "EC954": "'quantity' should be a multiple of the lot size.",
    "EC957": "Invalid 'price'.",
    "EC958": "'price' cannot be zero or negative.",
    "EC959": "Invalid 'slTriggerPrice'.",
    "EC960": "'slTriggerPrice' cannot be zero or negative.",
    "EC971": "'orderTag' should not exceed 50 characters",
    "EC972": "'algoId' should not exceed 12 characters.",
    "EC973": "For a buy order, 'slTriggerPrice' should be less than the 'price'.",
    "EC974": "For a sell order, 'slTriggerPrice' should be greater than the 'price'.",
    "EC993": "Provided 'brokerOrderId' is not in a valid state to modify the order.",
    "EC996": "'validity' of IOC is not allowed for AMO orders.",
    "EC997": "The specified order is not available in the order book and cannot be canceled. "
             "Please verify the order details and try again.",
    "EC998": "The specified order is not available in the order book, and order history cannot be "
             "retrieved. Please verify the order ID and try again.",
    "EC999": "The specified order is not available in the order book and cannot be modified. "
             "Please verify the order details and try again.",
}

#: codes that mean "an empty list" on the read endpoints (wire reference §8)
EMPTY = {"orders": "EC916", "positions": "EC920", "holdings": "EC922", "trades": "EC926"}

#: order-side product words (placeorder, book, sqroff) → the words positions and holdings name
#: them with. The documents disagree: seed 002 (the current official examples) says ``LONGTERM``
#: in positions and holdings, the reference's positions fixture ``CNC`` / ``MIS`` and its holdings
#: fixture ``DELIVERY``. The venue follows the seed; conversion accepts the older words too
#: (:data:`LEGACY_POSITION_WORDS`), and the adapter reads both.
PRODUCT_WORDS: dict[str, str] = {"LONGTERM": "LONGTERM", "INTRADAY": "INTRADAY", "MTF": "MTF"}
#: the older position-book words → order-side product words
LEGACY_POSITION_WORDS: dict[str, str] = {"CNC": "LONGTERM", "DELIVERY": "LONGTERM", "MIS": "INTRADAY"}
