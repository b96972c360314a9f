"""The store core: the owners of the store's state and the rules that change it (see ``store.StoreCore``)."""
