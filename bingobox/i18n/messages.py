"""Every text a shopper reads on a door panel, in English (the message ids of the catalogs): a panel message's key
(``bingobox.domain.panel``) → its title and its line of what to do. ``N_`` marks them for ``pybabel extract``."""

from __future__ import annotations


def N_(text: str) -> str:
    return text


MESSAGES: dict[str, tuple[str, str]] = {
    # the entrance at rest
    "entrance.ready": (N_("Show your entry code"), N_("Open the wallet app and hold the code up to the camera.")),
    "entrance.starting": (N_("Opening soon"), N_("The store is starting up. Please wait a moment.")),
    "entrance.lockdown": (N_("No entry right now"),
                          N_("The store is not letting anyone in at the moment. Shoppers inside can still leave.")),
    "entrance.maintenance": (N_("Restocking"), N_("The store is being restocked. Please come back in a few minutes.")),
    "entrance.closed": (N_("Closed"), N_("Opening hours today: %(hours)s.")),
    "entrance.closed_today": (N_("Closed"), N_("The store is closed all day today.")),
    "entrance.welcome": (N_("Welcome!"), N_("Come in. Take what you like: you pay as you walk out.")),
    "entrance.welcome_name": (N_("Welcome, %(name)s!"), N_("Come in. Take what you like: you pay as you walk out.")),
    "entrance.welcome_group": (N_("Welcome, all %(group)s of you!"),
                               N_("Come in one by one: show the same code for each of the other %(more)s. "
                                  "Everything the group takes is paid by the one whose code it is.")),
    "entrance.companion": (N_("Welcome, come in!"),
                           N_("The door is open for the next of your group. After you: %(more)s more.")),
    "entrance.door_stuck": (N_("The door did not open"),
                            N_("Your code was fine, but the door is not answering. Show a new code in a moment, "
                               "or ask staff.")),
    # the entrance's answers to a refused code
    "refused.expired": (N_("This code has expired"), N_("Refresh the code in the app and show the new one.")),
    "refused.used": (N_("This code was already used"),
                     N_("Each code opens the door once. Refresh the code in the app.")),
    "refused.unpaid": (N_("Unpaid charge"), N_("Please pay the open charge in the app, then show a new code.")),
    "refused.closed": (N_("The store is closed"), N_("Opening hours today: %(hours)s.")),
    "refused.closed_today": (N_("The store is closed"), N_("The store is closed all day today.")),
    "refused.one_at_a_time": (N_("One shopper at a time"),
                              N_("A device is being repaired. Please wait until the shopper inside has left.")),
    "refused.not_admitting": (N_("No entry right now"),
                              N_("The store is not letting new shoppers in at the moment. Please try again later.")),
    "refused.offline": (N_("Cannot let you in right now"),
                        N_("The store cannot reach the payment service and has reached its offline limit. "
                           "Please try again later.")),
    "refused.inside": (N_("You are already inside"),
                       N_("Your account has a visit in progress. Leave through the exit first.")),
    "refused.group_too_large": (N_("Too many people on one code"),
                                N_("This store lets fewer people in on one code. Choose a smaller group in the app.")),
    "refused.group_complete": (N_("Your group is complete"),
                               N_("Everyone on this code has come in already, or it is too late to join them. "
                                  "Show your own code.")),
    "refused.wrong_store": (N_("Code for another store"),
                            N_("Choose this store in the app and show the new code.")),
    "refused.wrong_door": (N_("Code for another door"), N_("Refresh the code in the app and show it here.")),
    "refused.invalid": (N_("This code cannot be used"),
                        N_("Show the entry code from the wallet app. If this keeps happening, ask staff.")),
    "refused.clock": (N_("Please ask staff"),
                      N_("The store's clock needs checking. Your code is fine; staff have been told.")),
    "refused.other": (N_("No entry"), N_("Your code was not accepted. Refresh it in the app and try again.")),
    # cards
    "refused.card_unknown": (N_("This card is not linked"),
                             N_("Link it in the app (Cards, then Add a card), or show your entry code.")),
    "refused.card_unavailable": (N_("Cards cannot be checked right now"),
                                 N_("Please show your entry code from the app, or try again in a few minutes.")),
    "refused.card_no_visit": (N_("No visit for this card"),
                              N_("This card did not open a visit that is in progress. Please ask staff.")),
    "cards.tap_now": (N_("Now tap your card"),
                      N_("Hold the card to the reader within %(seconds)s seconds to link it to your account.")),
    "cards.pairing": (N_("Linking your card…"), N_("One moment.")),
    "cards.paired": (N_("Card linked"), N_("From now on you can come in by tapping it (in a minute or so).")),
    "cards.pair_expired": (N_("The link code has expired"), N_("Make a new one in the app and try again.")),
    "cards.pair_taken": (N_("This card is linked to another account"),
                         N_("Remove it there first, or use another card.")),
    "cards.pair_failed": (N_("The card could not be linked"), N_("Please try again in a moment.")),
    "cards.pair_unavailable": (N_("Cards cannot be linked here"), N_("This store does not link cards right now.")),
    # the exit
    "exit.ready": (N_("Look at the camera to leave"), N_("Or show your entry code. You pay for what you carry out.")),
    "exit.checking": (N_("One moment…"), N_("Checking what you carry.")),
    "exit.show_code": (N_("Please show your code"),
                       N_("We could not recognise you. Hold the code from the app up to the camera.")),
    "exit.one_at_a_time": (N_("One at a time, please"),
                           N_("Several people are in front of the camera. Step up one by one, or show your code.")),
    "exit.goodbye_charged": (N_("Goodbye!"), N_("%(amount)s charged. The receipt is in your app.")),
    "exit.goodbye_later": (N_("Goodbye!"), N_("%(amount)s will be charged shortly. The receipt will be in your app.")),
    "exit.goodbye_declined": (N_("Goodbye!"), N_("%(amount)s could not be charged. Please pay it in the app.")),
    "exit.goodbye_free": (N_("Goodbye!"), N_("Nothing to pay. Thank you for visiting.")),
    "exit.goodbye": (N_("Goodbye!"), N_("Your receipt will be in the app.")),
    "exit.goodbye_card_limit": (N_("Goodbye!"),
                                N_("%(amount)s is over what a card may pay: the store will confirm it, "
                                   "then charge it. See your app.")),
    # a cabinet's panel (a fridge, the age-restricted goods)
    "cabinet.ready": (N_("Press the button to open"), N_("Take what you like: you pay as you walk out.")),
    "cabinet.restricted": (N_("Adults only"),
                           N_("Show your entry code to the camera to open. Sold %(hours)s.")),
    "cabinet.restricted_anytime": (N_("Adults only"), N_("Show your entry code to the camera to open.")),
    "cabinet.off_sale": (N_("Not on sale right now"),
                         N_("The goods in here are not sold at the moment: their cooling failed. Staff know.")),
    "cabinet.open": (N_("Open"), N_("Close the door when you have what you want.")),
    "cabinet.refused.off_sale": (N_("Not on sale right now"),
                                 N_("This cabinet stays shut: its goods are not sold at the moment.")),
    "cabinet.refused.code_needed": (N_("Show your code to open"),
                                    N_("These goods are for adults only: show the entry code from the app.")),
    "cabinet.refused.not_inside": (N_("No visit in progress"),
                                   N_("Show the code of the account you came in with.")),
    "cabinet.refused.age_unknown": (N_("Adults only"),
                                    N_("Your account has no verified age. Add your ID number in the app.")),
    "cabinet.refused.not_adult": (N_("Adults only"), N_("These goods are sold to adults (18 and over) only.")),
    "cabinet.refused.sale_hours": (N_("Not sold at this hour"), N_("These goods are sold %(hours)s.")),
    "cabinet.refused.door": (N_("The cabinet did not open"), N_("Please try again, or ask staff.")),
    # every door
    "emergency": (N_("Emergency: leave the store"),
                  N_("Walk calmly to the nearest exit. Do not come back in until staff say it is safe.")),
}

# the page's own words (sent with its state: the page holds no text of its own)
CHROME: dict[str, str] = {
    "entrance": N_("Entrance"),
    "exit": N_("Exit"),
    "cabinet": N_("Cabinet"),
    "offline": N_("This panel is not connected. Please ask staff."),
}
