print("robotctl")
